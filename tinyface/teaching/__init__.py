"""For the lessons: the collapse demo (why the triplet loss needs its margin) and the exercise checks."""
