"""The task table: which tier each kind of request belongs to.

Source: the routing design's task table, as the shipped data applies it (data/routing/README.md,
"tier follows the task table"; its per-category tables list the same 20 categories). The labeller
(`slmkit logs label`) uses it as its rubric, and a category's tier is read from here, never from the
labelling model, so labels follow the table even where a model would disagree with it.
`runtime/default/__init__.py` TASK_GUIDE is the short form the on-device routers are prompted with.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    category: str      # the `task_category` of the data format
    tier: str          # simple | medium | complex
    description: str   # what requests of this kind ask for (the rubric's line)


TASKS: tuple[Task, ...] = (
    Task("intent_classification", "simple", "name the intent of a message from a given or obvious set"),
    Task("text_classification", "simple", "put a text into one of given classes (topic, spam, language, ...)"),
    Task("sentiment", "simple", "say whether a text is positive, negative or neutral"),
    Task("entity_extraction", "simple", "pull names, dates, amounts or other fields out of a given text"),
    Task("template_filling", "simple", "fill a fixed format (JSON, form, table) from given facts"),
    Task("summarization", "simple", "summarize a short given text (up to about 8,000 characters)"),
    Task("closed_qa", "simple", "answer a question whose answer is in the given text"),
    Task("code_completion", "simple", "complete or fix one short function"),
    # data/routing/README.md, the authored follow-ups: on its own a follow-up asks for little
    Task("follow_up", "simple", "a short follow-up turn (\"thanks, now make it shorter\", \"why?\") on its own"),
    Task("long_summarization", "medium", "summarize a long given document (over about 8,000 characters)"),
    Task("open_qa", "medium", "answer a factual question from general knowledge, no text given"),
    Task("rewriting", "medium", "rewrite, simplify, shorten, translate or change the tone of a given text"),
    Task("multi_doc_synthesis", "complex", "combine or compare several given documents into one answer"),
    Task("code_generation", "complex", "write a program, class or several functions that work together"),
    Task("math_reasoning", "complex", "solve a math or quantitative word problem"),
    Task("creative_writing", "complex", "write a story, poem, script or other original piece"),
    Task("brainstorming", "complex", "generate many varied ideas or options"),
    Task("ambiguous_instruction", "complex", "an unclear or underspecified request that needs interpretation"),
    Task("multi_step_reasoning", "complex", "a problem needing several dependent steps of reasoning or planning"),
    Task("roleplay", "complex", "act as a character or persona in a conversation"),
)

TIER_OF: dict[str, str] = {task.category: task.tier for task in TASKS}
