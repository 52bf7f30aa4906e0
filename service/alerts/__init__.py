"""Alert webhooks: signed, retried, recorded deliveries of the events outbox.

`dispatch_due(engine, settings)` runs one pass; `Dispatcher` (start/stop) and `run_dispatcher_forever`
run continuously in the scheduler process.
"""

from service.alerts.dispatcher import dispatch_due
from service.alerts.worker import Dispatcher, run_dispatcher_forever

__all__ = ["Dispatcher", "dispatch_due", "run_dispatcher_forever"]
