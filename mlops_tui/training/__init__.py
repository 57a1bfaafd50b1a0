"""Code that runs inside a training job. Standard library only, plus the pipeline's deps."""
