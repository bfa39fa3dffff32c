"""The ATS mirror: organisations, staff, candidates, jobs and applications, kept by upserts."""
