"""tinymeter.models (layer 2, above core and the firmware ABI): model files and model
builders -- the TFLite reader/writer (``tflite``), inspection and value defects
(``inspect``, ``defects``), conversion with TensorFlow (``convert``, ``user_convert``),
the model zoo (``zoo``, ``lstm_kws``, ``digits``, ``demomodels``), single-op and chain
builders (``builders``) and the fuzzer's mutations (``mutate``). Imports nothing above
the firmware ABI; TensorFlow only inside the functions that need it."""
