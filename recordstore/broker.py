"""The Celery app and its queues, shared by the API (which publishes) and the worker."""

from dataclasses import dataclass

from celery import Celery
from kombu import Exchange, Queue

from recordstore.config import Settings, get_settings

PROCESS_ORDER = "process_order"
SEND_ORDER_CONFIRMATION = "send_order_confirmation"


@dataclass(frozen=True)
class Queues:
    """The work queues and the dead-letter queue their rejected messages go to."""

    orders: Queue
    emails: Queue
    dead_letter: Queue


def declare_queues(prefix: str = "") -> Queues:
    dlx = Exchange(f"{prefix}recordstore.dead-letter", type="direct", durable=True)

    def work_queue(name: str) -> Queue:
        # A message the worker rejects (attempts exhausted) goes to the dead-letter queue.
        return Queue(
            f"{prefix}{name}",
            Exchange(f"{prefix}{name}", type="direct", durable=True),
            routing_key=f"{prefix}{name}",
            durable=True,
            queue_arguments={
                "x-dead-letter-exchange": dlx.name,
                "x-dead-letter-routing-key": "dead_letter",
            },
        )

    return Queues(
        orders=work_queue("orders"),
        emails=work_queue("emails"),
        dead_letter=Queue(f"{prefix}dead_letter", dlx, routing_key="dead_letter", durable=True),
    )


def create_celery(settings: Settings | None = None) -> Celery:
    s = settings or get_settings()
    queues = declare_queues(s.queue_prefix)
    app = Celery("recordstore", broker=s.broker_url)
    app.conf.update(
        task_queues=(queues.orders, queues.emails),
        task_routes={
            PROCESS_ORDER: {"queue": queues.orders.name, "routing_key": queues.orders.name},
            SEND_ORDER_CONFIRMATION: {
                "queue": queues.emails.name,
                "routing_key": queues.emails.name,
            },
        },
        task_default_queue=queues.orders.name,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        # Redelivery instead of loss: ack after the task ran, requeue if the worker dies.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A task that fails is rejected to the dead-letter queue, not acked and forgotten: the
        # tasks dead-letter what they cannot finish themselves, and this catches the rest.
        task_acks_on_failure_or_timeout=False,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_timeout=s.broker_connect_timeout_s,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_heartbeat=10,
        # Publisher confirms: a 202 means RabbitMQ has the message, not just our socket buffer.
        broker_transport_options={"confirm_publish": True},
    )
    app.recordstore_queues = queues
    return app


celery_app = create_celery()
