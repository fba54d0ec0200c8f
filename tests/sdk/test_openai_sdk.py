"""The official OpenAI Python SDK against Tollgate, changing only base_url and api_key.

Both paths are exercised: an OpenAI-compatible deployment (`gpt-4o-mini`) and the Anthropic
translation (`claude-haiku`), each against `tollgate simulate`.
"""

import json

import openai
import pytest
from openai import OpenAI

from conftest import KEY

CHAT_ROUTES = ["gpt-4o-mini", "claude-haiku"]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
                "required": ["city"],
            },
        },
    }
]


@pytest.fixture
def client(gateway_url):
    return OpenAI(base_url=gateway_url, api_key=KEY["secret"], max_retries=0)


@pytest.mark.parametrize("model", CHAT_ROUTES)
def test_chat(client, model):
    r = client.chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        max_tokens=10,
    )
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.completion_tokens > 0


@pytest.mark.parametrize("model", CHAT_ROUTES)
def test_streaming_matches_non_streaming(client, model):
    args = dict(model=model, messages=[{"role": "user", "content": "Tell me a story"}], max_tokens=15, seed=3)
    full = client.chat.completions.create(**args).choices[0].message.content
    stream = client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **args)
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            text += c.delta.content or ""
            finish = c.finish_reason or finish
    assert text == full
    assert finish in ("stop", "length")
    assert usage is not None and usage.completion_tokens > 0


@pytest.mark.parametrize("model", CHAT_ROUTES)
def test_tool_calls(client, model):
    r = client.chat.completions.create(
        model=model, tools=TOOLS, messages=[{"role": "user", "content": "Weather in Paris?"}]
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    assert isinstance(args["city"], str)

    # Hand the result back; the model answers in text.
    follow = client.chat.completions.create(
        model=model,
        tools=TOOLS,
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'},
        ],
    )
    assert follow.choices[0].finish_reason == "stop"
    assert follow.choices[0].message.content


@pytest.mark.parametrize("model", CHAT_ROUTES)
def test_streamed_tool_calls(client, model):
    stream = client.chat.completions.create(
        model=model, tools=TOOLS, stream=True, messages=[{"role": "user", "content": "Weather in Oslo?"}]
    )
    name, arguments, finish = "", "", None
    for chunk in stream:
        for c in chunk.choices:
            for tc in c.delta.tool_calls or []:
                name += tc.function.name or ""
                arguments += tc.function.arguments or ""
            finish = c.finish_reason or finish
    assert name == "get_weather"
    assert isinstance(json.loads(arguments)["city"], str)
    assert finish == "tool_calls"


def test_json_mode(client):
    r = client.chat.completions.create(
        model="gpt-4o-mini",
        response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "Answer in JSON"}],
    )
    assert isinstance(json.loads(r.choices[0].message.content), dict)


def test_embeddings(client):
    # The SDK asks for base64 by default and decodes it.
    r = client.embeddings.create(model="text-embedding-3-small", input=["first", "second"], dimensions=8)
    assert len(r.data) == 2
    assert len(r.data[0].embedding) == 8
    r = client.embeddings.create(model="text-embedding-3-small", input="one", encoding_format="float")
    assert len(r.data[0].embedding) > 0


def test_models(client):
    ids = {m.id for m in client.models.list()}
    assert {"gpt-4o-mini", "claude-haiku", "text-embedding-3-small"} <= ids
    assert client.models.retrieve("claude-haiku").id == "claude-haiku"


def test_bad_request_error(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert "messages" in str(e.value)


def test_authentication_error(gateway_url):
    bad = OpenAI(base_url=gateway_url, api_key="tg_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])


def test_not_found_error(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "model_not_found"


def test_rate_limit_error(client):
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="busy", messages=[{"role": "user", "content": "x"}])


def test_request_id_header(client):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
    )
    assert raw.headers["x-request-id"].startswith("req_")
