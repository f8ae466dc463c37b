"""Drives `cellwright serve` with the official OpenAI Python client; prints one JSON report.

Usage: python client.py BASE_URL
"""

import json
import sys

import openai
from openai import OpenAI

TRANSLATE = {
    "type": "function",
    "function": {
        "name": "translate_dna",
        "description": "Translate a DNA coding sequence into its protein (one-letter codes).",
        "parameters": {
            "type": "object",
            "properties": {"dna": {"type": "string", "minLength": 3, "maxLength": 60}},
            "required": ["dna"],
            "additionalProperties": False,
        },
    },
}
QUESTION = [
    {"role": "system", "content": "You are a careful scientific assistant. Use the tools."},
    {"role": "user", "content": "What protein does the DNA sequence ATGGCCAAATAA encode?"},
]


def main(base_url: str) -> None:
    client = OpenAI(base_url=base_url, api_key="unused", max_retries=0)
    report = {"models": sorted(m.id for m in client.models.list())}

    # A tool call, whole and streamed.
    reply = client.chat.completions.create(
        model="embedded", messages=QUESTION, tools=[TRANSLATE], tool_choice="required"
    )
    choice = reply.choices[0]
    call = choice.message.tool_calls[0]
    report["call"] = {
        "name": call.function.name,
        "arguments": json.loads(call.function.arguments),
        "finish_reason": choice.finish_reason,
        "usage": reply.usage.total_tokens,
    }
    streamed = {}
    for chunk in client.chat.completions.create(
        model="embedded", messages=QUESTION, tools=[TRANSLATE], tool_choice="required", stream=True
    ):
        for delta_call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = streamed.setdefault(delta_call.index, {"name": "", "arguments": ""})
            if delta_call.function.name:
                entry["name"] += delta_call.function.name
            if delta_call.function.arguments:
                entry["arguments"] += delta_call.function.arguments
    report["streamed_call"] = {
        "name": streamed[0]["name"],
        "arguments": json.loads(streamed[0]["arguments"]),
    }

    # The tool's result goes back; the model answers in text, streamed.
    conversation = QUESTION + [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "MAK"},
    ]
    text = ""
    for chunk in client.chat.completions.create(
        model="embedded", messages=conversation, tools=[TRANSLATE], max_tokens=40, stream=True
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    report["answer"] = text

    vectors = client.embeddings.create(
        model="all-MiniLM-L6-v2", input=["T cells express CD3E.", "B cells express CD19."]
    )
    report["embeddings"] = [len(d.embedding) for d in vectors.data]
    report["embedding_norm"] = sum(x * x for x in vectors.data[0].embedding) ** 0.5

    try:
        client.chat.completions.create(model="no-such-model", messages=QUESTION)
        report["unknown_model"] = None
    except openai.APIStatusError as error:
        report["unknown_model"] = {"status": error.status_code, "code": error.code}

    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
