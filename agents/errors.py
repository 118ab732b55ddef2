"""Typed agent failures whose message a person can read in the thread and act on."""

from __future__ import annotations


class AgentError(Exception):
    """A turn could not finish; `str(error)` says what happened and what to do next."""

    def __init__(
        self,
        message: str,
        *,
        agent: str | None = None,
        model: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.agent = agent
        self.model = model
        self.request_id = request_id


class ModelUnavailable(AgentError):
    """The Anthropic API was overloaded, rate-limited or unreachable after the SDK's retries."""


class ModelRejected(AgentError):
    """The API refused the request itself (key, model name, permissions, a bad request)."""


class ModelRefused(AgentError):
    """The model declined to answer (stop reason `refusal`)."""


class TurnIncomplete(AgentError):
    """The model started but did not finish: a dropped stream, or a turn that never ended."""


class StreamStalled(TurnIncomplete):
    """The answer was streaming and then nothing came for the stall bound: worth one more try."""


class ContextTooLong(TurnIncomplete):
    """The thread no longer fits the model's context window, even with older messages left out."""


class ReportUnavailable(AgentError):
    """No completion report could be read from the model, even after asking twice."""
