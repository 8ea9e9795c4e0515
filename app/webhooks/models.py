from app.webhooks.inbound_models import *  # noqa: F403 - inbound models (outbound adds its own below)
from app.webhooks.outbound_models import *  # noqa: F403 - outbound models
