/* tinymeter exported runtime: the model's layer table behind a small C API.
 *
 * Everything is static: the generated model.c holds the weights and quantization
 * parameters (const, in flash) and the tensor arena (.bss); there is no allocation,
 * no parsing and nothing to initialize at run time.  See tinymeter_model.h. */
#include "tinymeter_model.h"

#include "tm_runtime.h"

int tinymeter_init(void) { return 0; }

uint32_t tinymeter_num_layers(void) { return tm_num_layers; }

const char *tinymeter_layer_name(uint32_t layer) {
  return layer < tm_num_layers ? tm_layers[layer].op_name : 0;
}

int tinymeter_invoke_layer(uint32_t layer) {
  if (layer >= tm_num_layers) return -1;
  tm_layers[layer].kernel(tm_layers[layer].params);
  return 0;
}

int tinymeter_invoke(void) {
  for (uint32_t l = 0; l < tm_num_layers; ++l) tm_layers[l].kernel(tm_layers[l].params);
  return 0;
}

uint8_t *tinymeter_input(uint32_t index) {
  return index < tm_num_inputs ? tm_inputs[index].data : 0;
}

uint32_t tinymeter_input_bytes(uint32_t index) {
  return index < tm_num_inputs ? tm_inputs[index].bytes : 0u;
}

const uint8_t *tinymeter_output(uint32_t index) {
  return index < tm_num_outputs ? tm_outputs[index].data : 0;
}

uint32_t tinymeter_output_bytes(uint32_t index) {
  return index < tm_num_outputs ? tm_outputs[index].bytes : 0u;
}
