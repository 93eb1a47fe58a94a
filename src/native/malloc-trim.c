/*
 * malloc_trim(0) for the gateway, as a Node-API addon (src/memory-release.ts calls it when traffic
 * pauses). After a burst, glibc keeps the free memory in the middle of its heap: it gives back only the
 * top, and only this call returns the free pages below a live allocation to the system. JavaScript
 * cannot call it, hence these few lines of C. glibc Linux only; musl and other systems return memory
 * their own way and need no addon.
 *
 * holdFreed(mmapThreshold, trimThreshold) lets glibc keep freed memory while traffic flows, for the next
 * big message to reuse: by default each allocation of a few MB is a fresh mmap, and in some virtual
 * machines a first touch of memory costs 40 times a copy into memory already touched. trim() gives it
 * back once traffic pauses.
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

/* holdFreed(mmapThreshold, trimThreshold): true when glibc took both settings. */
static napi_value holdFreed(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t mmapThreshold = 0, trimThreshold = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) return NULL;
  if (napi_get_value_int32(env, argv[0], &mmapThreshold) != napi_ok || napi_get_value_int32(env, argv[1], &trimThreshold) != napi_ok) return NULL;
  const int took = mallopt(M_MMAP_THRESHOLD, mmapThreshold) == 1 && mallopt(M_TRIM_THRESHOLD, trimThreshold) == 1;
  napi_value result;
  if (napi_get_boolean(env, took, &result) != napi_ok) return NULL;
  return result;
}

static int exportFunction(napi_env env, napi_value exports, const char *name, napi_callback callback) {
  napi_value function;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, NULL, &function) == napi_ok &&
         napi_set_named_property(env, exports, name, function) == napi_ok;
}

NAPI_MODULE_INIT() {
  if (!exportFunction(env, exports, "trim", trim) || !exportFunction(env, exports, "holdFreed", holdFreed)) return NULL;
  return exports;
}
