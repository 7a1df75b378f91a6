"""What happens because data arrived: alerts, promotion, webhooks, the worker, admin writes."""
