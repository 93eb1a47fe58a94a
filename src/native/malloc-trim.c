/*
 * malloc_trim(0) for the gateway, as a Node-API addon (src/memory-release.ts calls it when traffic
 * pauses). After a burst, glibc keeps the free memory in the middle of its heap: it gives back only the
 * top, and only this call returns the free pages below a live allocation to the system. JavaScript
 * cannot call it, hence these few lines of C. glibc Linux only; musl and other systems return memory
 * their own way and need no addon.
 */
#include <malloc.h>
#include <node_api.h>

/* trim(): true when some memory was given back. */
static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  if (napi_get_boolean(env, malloc_trim(0) != 0, &result) != napi_ok) return NULL;
  return result;
}

NAPI_MODULE_INIT() {
  napi_value function;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, trim, NULL, &function) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trim", function) != napi_ok) return NULL;
  return exports;
}
