"""tinymeter.firmware (layer 3): from a parsed model to a Cortex-M ELF -- per-op lowering
with TFLM's quantization arithmetic (``lower/``, ``quant``), the arena planner, C code
generation (``codegen``, ``boardgen``), the cached gcc build (``build``), the TFLM harness
(``tflm``, ``tflmconfig``), the exported library (``export``) and op support
(``support``); ``runtime/`` is the device C runtime. Imports core, the ABI and models."""
