"""Process infrastructure that is given its work: worker, scheduler, HTTP, metrics, logging."""
