"""Data statistics and their comparison: the one implementation behind the built-in pipeline's
StatisticsGen and ExampleValidator steps and the operator's drift trigger, so a batch checked for drift is
measured exactly as the training data was. Pure: pyarrow, numpy and tensorflow-metadata protos only."""
