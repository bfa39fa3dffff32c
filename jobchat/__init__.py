"""jobchat: recruiting conversations beside an applicant tracking system."""

__version__ = "0.1.0"
