"""Training: the frozen config, kernel code generation and its template, the run loop over chunks
(train_range / train), cells streamed to a result file, the finisher, work shared by threads through a
counter, warm-up, progress lines, the garbage collection of a process that compiles (gcpolicy)."""
