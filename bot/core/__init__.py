"""Pure code with no I/O: crontabs, estimates, mrkdwn text, the /pm grammar, access, move rules."""
