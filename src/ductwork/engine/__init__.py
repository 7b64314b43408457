"""Running graphs: readiness tracking, the run loop, executors and logs."""
