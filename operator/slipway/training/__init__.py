"""TrainingPipeline: pipeline sources, schedules, triggers, executors, registration."""
