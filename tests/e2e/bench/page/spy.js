// Imported first: every wasm instance the page creates, so each library's linear memory can be
// measured (wasm memory never shrinks: its size is that instance's peak).
export const instances = [];

const note = (result) => {
  const instance = result instanceof WebAssembly.Instance ? result : result.instance;
  if (instance?.exports?.memory instanceof WebAssembly.Memory) instances.push(instance);
  return result;
};
const instantiate = WebAssembly.instantiate;
WebAssembly.instantiate = (...args) => instantiate.apply(WebAssembly, args).then(note);
const streaming = WebAssembly.instantiateStreaming;
if (streaming) WebAssembly.instantiateStreaming = (...args) => streaming.apply(WebAssembly, args).then(note);

/** The summed size of every wasm memory instantiated so far (bytes). */
export const wasmBytes = () => instances.reduce((n, i) => n + i.exports.memory.buffer.byteLength, 0);
