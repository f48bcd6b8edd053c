"""Kopf handlers: decorators only, each delegating to domain/, agent/ or clients/."""
