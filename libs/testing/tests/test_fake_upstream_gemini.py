"""The fake Gemini upstream, exercised with the official ``google-genai`` SDK and raw httpx."""

from __future__ import annotations

import json

import httpx
import pytest
from google import genai
from google.genai import errors, types
from smoltbot_testing import FakeUpstream
from smoltbot_testing.fake_upstream import FORCED_ERROR
from smoltbot_testing.fake_upstream import gemini as fake_gemini

MODEL = "gemini-2.5-flash"
QUERY = "résumé of 東京 🗼"
THINKING = f"The user asked: {QUERY!r}. I will echo it back."
LOOKUP = types.FunctionDeclaration(
    name="lookup",
    description="Look something up",
    parameters=types.Schema(type=types.Type.OBJECT, properties={"q": {"type": "STRING"}}),
)
THOUGHTS_AND_TOOLS = types.GenerateContentConfig(
    thinking_config=types.ThinkingConfig(include_thoughts=True),
    tools=[types.Tool(function_declarations=[LOOKUP])],
)
CONTENTS = [
    types.Content(role="user", parts=[types.Part(text="earlier")]),
    types.Content(role="model", parts=[types.Part(text="reply")]),
    types.Content(role="user", parts=[types.Part(text="résumé of"), types.Part(text="東京 🗼")]),
]
QUERY_PARTS = "résumé of\n東京 🗼"  # text parts of the last user turn, joined by newlines
KEY_HEADER = {"x-goog-api-key": "g-key"}
# The SDK's async client subclasses aiohttp's ClientSession, which aiohttp warns about.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning"
)


def client_for(url: str, **headers: str) -> genai.Client:
    return genai.Client(
        api_key="g-key", http_options=types.HttpOptions(base_url=url, headers=headers or None)
    )


@pytest.fixture
def sdk(fake: FakeUpstream) -> genai.Client:
    return client_for(fake.url)


async def test_non_streaming_reply_has_thought_text_function_call_and_usage(
    fake: FakeUpstream, sdk: genai.Client
) -> None:
    response = await sdk.aio.models.generate_content(
        model=MODEL, contents=QUERY, config=THOUGHTS_AND_TOOLS
    )
    assert response.candidates is not None
    content = response.candidates[0].content
    assert content is not None
    assert content.role == "model"
    assert content.parts is not None
    thought, text, call = content.parts
    assert (thought.thought, thought.text) == (True, THINKING)
    assert text.text == f"Echo: {QUERY}"
    assert not text.thought
    assert response.text == f"Echo: {QUERY}"  # the SDK leaves thoughts out of .text
    assert call.function_call is not None
    assert call.function_call.name == "lookup"
    assert call.function_call.args == {"query": QUERY, "n": len(QUERY)}
    assert call.thought_signature  # base64 on the wire, bytes in the SDK
    assert response.function_calls is not None
    assert [c.name for c in response.function_calls] == ["lookup"]
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage is not None
    assert usage.prompt_token_count is not None
    assert usage.prompt_token_count > 0
    assert usage.thoughts_token_count == len(THINKING.split())
    assert usage.candidates_token_count == len(f"Echo: {QUERY}".split()) + 5
    assert usage.total_token_count == (
        usage.prompt_token_count + usage.candidates_token_count + usage.thoughts_token_count
    )
    assert response.model_version == MODEL
    assert response.response_id

    [record] = fake.responses
    assert record.method == "POST"
    assert record.path.endswith(f"/models/{MODEL}:generateContent")
    assert record.request_header("x-goog-api-key") == "g-key"
    sent = json.loads(record.request_body)
    # google-genai 3.x writes thinkingConfig's own fields in snake_case; Google reads both.
    assert sent["generationConfig"]["thinkingConfig"] == {"include_thoughts": True}
    assert sent["tools"][0]["functionDeclarations"][0]["name"] == "lookup"
    assert record.decoded.startswith(b'{\n  "candidates": [\n')  # pretty, like Google


async def test_stream_spreads_parts_over_chunks_with_finish_reason_last(
    fake: FakeUpstream, sdk: genai.Client
) -> None:
    whole = await sdk.aio.models.generate_content(
        model=MODEL, contents=CONTENTS, config=THOUGHTS_AND_TOOLS
    )
    stream = await sdk.aio.models.generate_content_stream(
        model=MODEL, contents=CONTENTS, config=THOUGHTS_AND_TOOLS
    )
    chunks = [chunk async for chunk in stream]
    assert len(chunks) > 4
    parts = [p for c in chunks for p in c.candidates[0].content.parts]  # type: ignore[index, union-attr]
    thoughts = "".join(p.text or "" for p in parts if p.thought)
    text = "".join(p.text or "" for p in parts if not p.thought and p.text)
    calls = [p.function_call for p in parts if p.function_call]
    assert thoughts == f"The user asked: {QUERY_PARTS!r}. I will echo it back."
    assert text == f"Echo: {QUERY_PARTS}"
    assert [(c.name, c.args) for c in calls] == [
        ("lookup", {"query": QUERY_PARTS, "n": len(QUERY_PARTS)})
    ]
    finish = [c.candidates[0].finish_reason for c in chunks]  # type: ignore[index]
    assert finish[-1] == types.FinishReason.STOP
    assert set(finish[:-1]) == {None}
    assert chunks[-1].usage_metadata == whole.usage_metadata
    assert all(c.response_id == whole.response_id for c in chunks)

    record = fake.responses[-1]
    assert record.path.endswith(f"/models/{MODEL}:streamGenerateContent")
    assert record.query == "alt=sse"
    assert record.response_header("content-type") == "text/event-stream"
    events = record.decoded.split(b"\r\n\r\n")
    assert events[-1] == b""  # every event ends with CRLF CRLF, as Google sends them
    assert all(e.startswith(b"data: {") for e in events[:-1])
    assert b'"role": "model"},"index": 0' in record.decoded  # Google's one-line spacing


async def test_thoughts_only_when_asked_and_no_call_without_tools(sdk: genai.Client) -> None:
    response = await sdk.aio.models.generate_content(model=MODEL, contents="hi")
    assert response.candidates is not None
    assert response.candidates[0].content is not None
    parts = response.candidates[0].content.parts
    assert parts is not None
    assert [(p.text, p.thought) for p in parts] == [("Echo: hi", None)]
    assert response.usage_metadata is not None
    assert response.usage_metadata.thoughts_token_count is None


async def test_key_as_query_parameter_and_the_v1beta_and_prefixed_paths(fake: FakeUpstream) -> None:
    body = fake_gemini.generate_request("q param")
    async with httpx.AsyncClient(base_url=fake.url) as client:
        by_query = await client.post(f"/v1beta/models/{MODEL}:generateContent?key=k", json=body)
        prefixed = await client.post(
            f"/gemini/v1beta/models/{MODEL}:generateContent", json=body, headers=KEY_HEADER
        )
        no_key = await client.post(f"/v1beta/models/{MODEL}:generateContent", json=body)
    for ok in (by_query, prefixed):
        assert ok.status_code == 200
        assert ok.headers["content-type"] == "application/json; charset=UTF-8"
        assert ok.json()["candidates"][0]["content"]["parts"] == [{"text": "Echo: q param"}]
    assert by_query.json() == prefixed.json()
    assert no_key.status_code == 403
    assert no_key.json()["error"]["status"] == "PERMISSION_DENIED"
    assert [(r.path, r.query) for r in fake.responses] == [
        (f"/v1beta/models/{MODEL}:generateContent", "key=k"),
        (f"/gemini/v1beta/models/{MODEL}:generateContent", ""),
        (f"/v1beta/models/{MODEL}:generateContent", ""),
    ]


async def test_sdk_through_the_gemini_prefix(fake: FakeUpstream) -> None:
    response = await client_for(f"{fake.url}/gemini").aio.models.generate_content(
        model="gemini-3-pro", contents="prefixed"
    )
    assert response.text == "Echo: prefixed"
    assert response.model_version == "gemini-3-pro"
    assert fake.responses[-1].path.startswith("/gemini/v1")


async def test_stream_without_alt_sse_is_one_json_array_of_the_same_chunks(
    fake: FakeUpstream,
) -> None:
    body = fake_gemini.generate_request(
        QUERY, generationConfig={"thinkingConfig": {"includeThoughts": True}}
    )
    url = f"/v1beta/models/{MODEL}:streamGenerateContent"
    headers = {**KEY_HEADER, "accept-encoding": "identity"}
    async with httpx.AsyncClient(base_url=fake.url) as client:
        array = await client.post(url, json=body, headers=headers)
        sse = await client.post(url, params={"alt": "sse"}, json=body, headers=headers)
    assert array.headers["content-type"] == "application/json; charset=UTF-8"
    assert array.content.startswith(b'[{\n  "candidates"')
    assert b"\n,\r\n{" in array.content
    assert array.content.endswith(b"\n]")
    from_sse = [
        json.loads(line.removeprefix("data: "))
        for line in sse.text.split("\r\n\r\n")
        if line.startswith("data: ")
    ]
    assert array.json() == from_sse
    assert from_sse[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_snake_case_request_fields_are_read_too(fake: FakeUpstream) -> None:
    body = {
        "contents": [{"parts": [{"text": "snake"}]}],  # role left out: user
        "generation_config": {"thinking_config": {"include_thoughts": True}},
        "tools": [{"function_declarations": [{"name": "snake_tool"}]}],
    }
    async with httpx.AsyncClient(base_url=fake.url) as client:
        response = await client.post(
            f"/v1beta/models/{MODEL}:generateContent", json=body, headers=KEY_HEADER
        )
    parts = response.json()["candidates"][0]["content"]["parts"]
    assert parts[0] == {"text": "The user asked: 'snake'. I will echo it back.", "thought": True}
    assert parts[2]["functionCall"] == {"name": "snake_tool", "args": {"query": "snake", "n": 5}}


async def test_forced_and_validation_errors_have_google_shape(fake: FakeUpstream) -> None:
    forced = client_for(fake.url, **{"x-fake-status": "429"})
    with pytest.raises(errors.ClientError) as info:
        await forced.aio.models.generate_content(model=MODEL, contents="x")
    assert (info.value.code, info.value.status, info.value.message) == (
        429,
        "RESOURCE_EXHAUSTED",
        FORCED_ERROR,
    )
    unavailable = client_for(fake.url, **{"x-fake-status": "503"})
    with pytest.raises(errors.ServerError) as server:
        await unavailable.aio.models.generate_content(model=MODEL, contents="x")
    assert server.value.status == "UNAVAILABLE"
    async with httpx.AsyncClient(base_url=fake.url, headers=KEY_HEADER) as client:
        missing = await client.post(f"/v1beta/models/{MODEL}:generateContent", json={})
        bad = await client.post(f"/v1beta/models/{MODEL}:generateContent", content=b"{nope")
    assert missing.status_code == bad.status_code == 400
    assert missing.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert missing.json()["error"]["code"] == 400
    assert fake.responses[0].decoded == fake_gemini.pretty(
        fake_gemini.error_body(429, FORCED_ERROR)
    )


async def test_models_list(fake: FakeUpstream, sdk: genai.Client) -> None:
    pager = await sdk.aio.models.list()
    names = [m.name async for m in pager]
    assert names[:2] == ["models/gemini-2.5-pro", "models/gemini-2.5-flash"]
    assert fake.responses[0].method == "GET"


def test_blocking_client_streams_from_the_threaded_fake() -> None:
    with FakeUpstream().in_thread() as fake:
        client = client_for(fake.url)
        chunks = list(
            client.models.generate_content_stream(
                model=MODEL, contents="sync", config=THOUGHTS_AND_TOOLS
            )
        )
        assert "".join(c.text or "" for c in chunks) == "Echo: sync"
        assert len(fake.responses) == 1
