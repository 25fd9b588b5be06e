"""Import every ORM model so that ``Base.metadata`` knows all tables (Alembic, tests)."""

from __future__ import annotations

from api.auth.models import ApiToken as ApiToken
from api.auth.models import User as User
from api.cash.models import CashDayRecord as CashDayRecord
from api.days.models import CarryRulesRecord as CarryRulesRecord
from api.days.models import DayClose as DayClose
from api.days.models import JobOutcome as JobOutcome
from api.db import Base as Base
from api.events.models import Position as Position
from api.events.models import Proof as Proof
from api.events.models import StopEvent as StopEvent
from api.jobs.models import CourierRecord as CourierRecord
from api.jobs.models import DepotRecord as DepotRecord
from api.jobs.models import JobRecord as JobRecord
from api.notify.models import Notification as Notification
from api.notify.models import OutboxEvent as OutboxEvent
from api.notify.models import WebhookDelivery as WebhookDelivery
from api.notify.models import WebhookEndpoint as WebhookEndpoint
from api.plans.models import PlanRecord as PlanRecord
from api.plans.models import RouteRecord as RouteRecord
from api.plans.models import StopRecord as StopRecord
