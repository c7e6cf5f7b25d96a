"""Studies: many runs, one question (``loralab study STUDY.yaml``). See :mod:`loralab.studies.spec`."""

from loralab.studies.results import read_results
from loralab.studies.runner import StudyOutcome, plan, run_study
from loralab.studies.spec import Study, Trial, load_study, study_from_dict

__all__ = ["Study", "StudyOutcome", "Trial", "load_study", "plan", "read_results", "run_study", "study_from_dict"]
