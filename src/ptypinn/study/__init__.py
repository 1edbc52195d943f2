"""Study orchestration: the training matrix (phase E) and the end-to-end study runner."""
