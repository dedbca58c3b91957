"""e2i-fix: a codemod that hardens Docker Compose stacks with minimal, faithful edits."""

__version__ = "0.1.0"
