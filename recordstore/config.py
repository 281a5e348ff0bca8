"""One typed settings object, read from the environment (the root .env feeds both run modes)."""

from functools import lru_cache
from urllib.parse import quote

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from recordstore.exposure import admin_token_problem


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    postgres_host: str = "127.0.0.1"
    postgres_port: int = 15432
    postgres_user: str = "recordstore"
    postgres_password: str = "recordstore"
    postgres_db: str = "recordstore"
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_connect_timeout_s: int = Field(default=2, ge=1)
    db_statement_timeout_ms: int = Field(default=5000, ge=100)

    rabbitmq_host: str = "127.0.0.1"
    rabbitmq_port: int = 5682
    rabbitmq_user: str = "recordstore"
    rabbitmq_password: str = "recordstore"
    broker_connect_timeout_s: float = Field(default=2.0, gt=0)
    # Prefixes every queue and exchange name: several labs (or a test's worker) on one broker.
    queue_prefix: str = Field(default="", pattern=r"^[a-z0-9.-]*$")

    # The simulated payment gateway and mail server (defaults: the guide's ~3 s + ~2 s profile).
    payment_latency_ms: int = Field(default=2800, ge=0)
    payment_failure_rate: float = Field(default=0.0, ge=0, le=1)
    email_delay_ms: int = Field(default=2000, ge=0)
    email_failure_rate: float = Field(default=0.0, ge=0, le=1)
    latency_jitter: float = Field(default=0.15, ge=0, le=1)

    task_max_attempts: int = Field(default=3, ge=1)
    task_retry_backoff_s: float = Field(default=1.0, ge=0)
    task_retry_backoff_max_s: float = Field(default=10.0, ge=0)
    outbox_relay_interval_s: float = Field(default=2.0, gt=0)
    outbox_relay_grace_s: float = Field(default=3.0, ge=0)
    # An order not confirmed or failed this long after checkout is overdue (OrdersNotFinal).
    order_final_within_s: int = Field(default=300, ge=1)

    # Guards the admin endpoint (runtime fault toggles): the lab's own, made by ./lab on first
    # use (labkit/settings.py). None set: the admin routes are off, nothing guesses one.
    admin_token: str = ""
    # Where the gateway listens (compose: publishes): beyond loopback a published token is refused.
    gateway_bind: str = "127.0.0.1"

    worker_metrics_port: int = 9808
    # Off only to measure what metrics cost (./lab bench): /metrics still answers, but empty.
    metrics_enabled: bool = True
    log_format: str = Field(default="json", pattern="^(json|console)$")
    log_level: str = "INFO"
    # A copy of every log line, as JSON, in this file (compose: the log volume the API reads).
    log_file: str = ""
    # Where GET /orders/{id}/logs reads gateway.log, api.log and worker.log ("" : nowhere).
    log_dir: str = ""

    @model_validator(mode="after")
    def _admin_token_fits_the_exposure(self) -> "Settings":
        problem = admin_token_problem(self.admin_token, self.gateway_bind)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def database_url(self) -> str:
        return (
            f"postgresql+psycopg://{quote(self.postgres_user)}:{quote(self.postgres_password)}"
            f"@{self.postgres_host}:{self.postgres_port}/{self.postgres_db}"
        )

    @property
    def broker_url(self) -> str:
        return (
            f"amqp://{quote(self.rabbitmq_user)}:{quote(self.rabbitmq_password)}"
            f"@{self.rabbitmq_host}:{self.rabbitmq_port}//"
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
