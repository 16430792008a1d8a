"""What the paper's naturalness study is (section 4.3, Figure 5): the question, the three
conditions and the medians the paper reports. Shared by every part of :mod:`colorlib.study`."""

from __future__ import annotations

QUESTION = "Does this image look natural to you?"
#: The three versions of each photo a participant may see.
CONDITIONS = ("ground_truth", "full", "baseline")
#: Median percentage of "natural" answers per condition in the paper's Figure 5
#: (10 users, 224x224 images).
PAPER_MEDIANS = {"ground_truth": 97.7, "full": 92.6, "baseline": 69.8}
LABELS = {"ground_truth": "Ground truth", "full": "Full model", "baseline": "Baseline"}


class StudyError(ValueError):
    """A study that cannot start or continue as asked, with a one-line message that says why."""


#: How to get the optional packages of the widgets and the plot.
INSTALL_BOOK = 'pip install "colorlib[book]"'
