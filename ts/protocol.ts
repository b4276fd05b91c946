// The wire protocol, read from protocol/protocol.json (its one definition, shared with py/ultra_sidecar).
import { readFileSync } from "node:fs";
import { Packr, addExtension } from "msgpackr";
import { PROTOCOL_JSON } from "./paths.js";

interface ProtocolSpec {
  version: number;
  ready_line: string;
  ndarray: { ext_type: number; out_of_band_flag: number; out_of_band_bytes: number; dtypes: DType[] };
  errors: Record<string, string>;
  ops: Record<string, { args: Record<string, string>; optional_args?: Record<string, string>; events?: string[] }>;
  /** maps with a fixed layout, by name ("$comment" aside); ts/bridge/shapes.ts declares them as zod schemas */
  shapes: Record<string, { fields: Record<string, string>; optional_fields?: Record<string, string> }>;
}

export const SPEC: ProtocolSpec = JSON.parse(readFileSync(PROTOCOL_JSON, "utf8"));
export const VERSION = SPEC.version;

export type DType = "float32" | "float64" | "int8" | "int16" | "int32" | "int64" | "uint8" | "uint16" | "uint32" | "bool";
export type TypedArray =
  Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array | Uint32Array;

const ARRAY_TYPES: Record<DType, { new (b: ArrayBuffer, o: number, n: number): TypedArray; BYTES_PER_ELEMENT: number }> = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  bool: Uint8Array,
};

/** A numeric array as it travels: dtype, shape and the raw data as a typed array (row-major). */
export class NDArray<T extends TypedArray = TypedArray> {
  constructor(
    readonly dtype: DType,
    readonly shape: number[],
    readonly data: T,
  ) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== data.length) throw new Error(`NDArray shape [${shape}] needs ${n} elements, data has ${data.length}`);
  }
  static float32(data: ArrayLike<number>, shape: number[] = [data.length]): NDArray<Float32Array> {
    return new NDArray("float32", shape, Float32Array.from(data));
  }
  get size(): number {
    return this.data.length;
  }
  /** Row i of the first axis, as a view. */
  row(i: number): T {
    const width = this.size / this.shape[0];
    return this.data.subarray(i * width, (i + 1) * width) as T;
  }
  toNumbers(): number[] {
    return Array.from(this.data as ArrayLike<number | bigint>, Number);
  }
}

// Out-of-band frames of the message being packed or unpacked (pack/unpack are synchronous, so one slot is enough).
let frames: Uint8Array[] = [];
const { out_of_band_flag: OOB_FLAG, out_of_band_bytes: OOB_BYTES } = SPEC.ndarray;

function packNDArray(a: NDArray): Buffer {
  const oob = a.data.byteLength >= OOB_BYTES;
  const header = Buffer.alloc(2 + 4 * a.shape.length + (oob ? 4 : 0));
  header.writeUInt8(SPEC.ndarray.dtypes.indexOf(a.dtype) | (oob ? OOB_FLAG : 0), 0);
  header.writeUInt8(a.shape.length, 1);
  a.shape.forEach((d, i) => header.writeUInt32LE(d, 2 + 4 * i));
  const bytes = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  if (!oob) return Buffer.concat([header, bytes]);
  frames.push(bytes); // sent as its own ZeroMQ frame, not copied into the msgpack body
  header.writeUInt32LE(frames.length - 1, header.length - 4);
  return header;
}

function unpackNDArray(buf: Uint8Array): NDArray {
  if (buf.length < 2) throw new Error("ndarray ext shorter than its header");
  const oob = (buf[0] & OOB_FLAG) !== 0;
  const dtype = SPEC.ndarray.dtypes[buf[0] & ~OOB_FLAG];
  if (!dtype) throw new Error(`unknown ndarray dtype code ${buf[0] & ~OOB_FLAG}`);
  const ndim = buf[1];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dimsEnd = 2 + 4 * ndim;
  if (buf.length < dimsEnd + (oob ? 4 : 0)) throw new Error("ndarray ext shorter than its shape");
  const shape = Array.from({ length: ndim }, (_, i) => view.getUint32(2 + 4 * i, true));
  let src = buf.subarray(dimsEnd);
  if (oob) {
    const index = view.getUint32(dimsEnd, true);
    if (index >= frames.length) throw new Error(`ndarray names frame ${index + 1}, the message has ${frames.length + 1} frames`);
    src = frames[index];
  }
  const Ctor = ARRAY_TYPES[dtype];
  const n = shape.reduce((a, b) => a * b, 1);
  if (src.length !== n * Ctor.BYTES_PER_ELEMENT)
    throw new Error(`ndarray payload of ${src.length} bytes does not match shape [${shape}] ${dtype}`);
  // A typed array view needs an aligned offset; copy the (rare) unaligned payloads.
  const data =
    src.byteOffset % Ctor.BYTES_PER_ELEMENT === 0
      ? new Ctor(src.buffer as ArrayBuffer, src.byteOffset, n)
      : new Ctor(new Uint8Array(src).buffer as ArrayBuffer, 0, n);
  return new NDArray(dtype, shape, data);
}

addExtension({ Class: NDArray, type: SPEC.ndarray.ext_type, pack: packNDArray, unpack: unpackNDArray });

// int64AsType "auto": 64-bit ints within ±2^53 decode as numbers (documented; missing from the .d.ts).
// encodeUndefinedAsNil: an optional argument left undefined is nil (None), not msgpackr's private ext type 0.
const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  variableMapSize: true,
  int64AsType: "auto" as "number",
  encodeUndefinedAsNil: true,
});

/** A message as ZeroMQ frames: the msgpack body, then one frame per out-of-band array. */
export function pack(value: unknown): Uint8Array[] {
  frames = [];
  try {
    const body = packr.pack(value);
    return [Buffer.from(body), ...frames]; // copy the body: msgpackr reuses its buffer on the next pack
  } finally {
    frames = [];
  }
}

export function unpack(message: Uint8Array[]): any {
  frames = message.slice(1);
  try {
    return packr.unpack(message[0]);
  } finally {
    frames = [];
  }
}

export interface RemoteError {
  code: string;
  message: string;
  traceback: string;
}
export interface Reply {
  id: number | null;
  ok?: boolean;
  result?: any;
  error?: RemoteError;
  event?: string;
  data?: any;
}
