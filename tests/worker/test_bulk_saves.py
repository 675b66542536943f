"""The bulk-save consumer's handling of save messages it cannot read, against the real Redis."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
import redis

from convoflow.services.dead_letters import dead_letter_key
from convoflow.tasks import names
from convoflow.worker.bulk_saves import dead_letter_undecodable, decode
from tests.utils.stack import Stack


def _message(task_id: str, tag: str, content_type: str, body: bytes) -> bytes:
    """A save message as kombu's Redis transport stores it in the queue."""
    return json.dumps(
        {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "binary",
            "content-type": content_type,
            "headers": {"task": names.SAVE_CONVERSATION, "id": task_id},
            "properties": {
                "delivery_tag": tag,
                "delivery_info": {"exchange": "", "routing_key": "database"},
                "body_encoding": "base64",
                "priority": 0,
            },
        }
    ).encode()


def test_a_save_message_with_an_unreadable_body_becomes_a_dead_letter(sqlite_stack: Stack) -> None:
    settings = sqlite_stack.settings
    task_id, tag = str(uuid.uuid4()), str(uuid.uuid4())
    raw = _message(task_id, tag, "application/x-msgpack", b"\x93\xa1q\xa1a\xa1s")
    with pytest.raises(ValueError) as caught:
        decode(raw)

    kept = dead_letter_undecodable(settings, [(raw, f"ValueError: {caught.value}")])

    assert kept == [tag]  # acknowledged: given back, it would return after every visibility timeout
    client = redis.Redis.from_url(settings.redis_url)
    try:
        entries = [json.loads(item) for item in client.lrange(dead_letter_key(settings), 0, -1)]
    finally:
        client.close()
    mine = [entry for entry in entries if entry["task_id"] == task_id]  # the stack drops its keys when it stops
    assert len(mine) == 1
    assert mine[0]["error"].startswith("undecodable save message: ValueError")
    assert json.loads(mine[0]["message"])["headers"]["id"] == task_id


def test_a_readable_save_message_is_decoded() -> None:
    body = json.dumps([["question", "answer", "session-1"], {}, {}]).encode()
    saved = decode(_message("t-1", "tag-1", "application/json", body))
    assert (saved.id, saved.tag, list(saved.args)) == ("t-1", "tag-1", ["question", "answer", "session-1"])
