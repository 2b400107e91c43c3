"""Chit-chat and follow-ups: what a thread's "thanks!" and "and when?" are taken to mean."""

from __future__ import annotations

import pytest

from index.answer import question_type
from index.conversation import contextualise, is_chitchat, is_elliptical

EARLIER = "What did Chery announce about its UK factory?"


@pytest.mark.parametrize("text", ["thanks!", "Thanks, that helps a lot", "thank you so much", "👍", "ok", "lol",
                                  "hi there", "great answer, thanks", "cheers mate", "", "  !!! "])
def test_thanks_greetings_and_reactions_are_chit_chat(text: str) -> None:
    assert is_chitchat(text)


@pytest.mark.parametrize("text", ["taxes rise", "what did chery say", "no tariffs on steel", "Interest rates",
                                  "ok so when does it open?", "thanks, but who said that?", "Liverpool jobs"])
def test_questions_and_topics_are_not_chit_chat(text: str) -> None:
    assert not is_chitchat(text)


@pytest.mark.parametrize(("follow_up", "read_as"), [
    ("and when?", "When? What did Chery announce about its UK factory?"),
    ("what about Jaecoo?", "What did Jaecoo announce about its UK factory?"),
    ("How about Omoda", "What did Omoda announce about its UK factory?"),
    ("did they say why?", "Did they say why? What did Chery announce about its UK factory?"),
    ("how many jobs?", "How many jobs? What did Chery announce about its UK factory?"),
])
def test_an_elliptical_follow_up_is_read_with_the_question_before_it(follow_up: str, read_as: str) -> None:
    assert is_elliptical(follow_up)
    assert contextualise(follow_up, EARLIER) == read_as


def test_the_follow_ups_question_word_decides_the_kind_of_answer() -> None:
    assert question_type(contextualise("and when?", EARLIER)) == "date"
    assert question_type(contextualise("how many jobs?", EARLIER)) == "number"
    assert question_type(contextualise("who said that?", EARLIER)) == "name"


@pytest.mark.parametrize("question", ["What did the Bank of England decide on interest rates?",
                                      "When will the Sunderland plant open?"])
def test_a_question_of_its_own_is_left_alone(question: str) -> None:
    assert not is_elliptical(question)
    assert contextualise(question, EARLIER) == question


def test_without_an_earlier_question_a_follow_up_is_asked_as_it_is() -> None:
    assert contextualise("and  when?", None) == "and when?"
    assert contextualise("what about Spain?", "How many cars were sold?") == "How many cars were sold: what about Spain?"
