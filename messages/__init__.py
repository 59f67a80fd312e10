"""The messages that cross the orchestration boundary (trigger → orchestrator → activity) and the enums of the
run views: frozen dataclasses with ``to_dict``/``from_dict`` (small JSON on the wire), each default declared once.
Standard library only, so every layer (and the dashboard, through ``messages.enums.for_page``) shares them."""
