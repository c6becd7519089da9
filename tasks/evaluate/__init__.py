"""Evaluation of students: metrics, evaluation sets, A/B comparison, gate, report, card."""
