// The wire protocol, read from protocol/protocol.json (its one definition, shared with py/ultra_sidecar).
import { readFileSync } from "node:fs";
import { Packr, addExtension } from "msgpackr";
import { PROTOCOL_JSON } from "./paths.js";

interface ProtocolSpec {
  version: number;
  ready_line: string;
  ndarray: { ext_type: number; dtypes: DType[] };
  errors: Record<string, string>;
  ops: Record<string, { args: Record<string, string>; events?: string[] }>;
}

export const SPEC: ProtocolSpec = JSON.parse(readFileSync(PROTOCOL_JSON, "utf8"));
export const VERSION = SPEC.version;

export type DType = "float32" | "float64" | "int8" | "int16" | "int32" | "int64" | "uint8" | "uint16" | "uint32" | "bool";
export type TypedArray =
  | Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array | Uint32Array;

const ARRAY_TYPES: Record<DType, { new (b: ArrayBuffer, o: number, n: number): TypedArray; BYTES_PER_ELEMENT: number }> = {
  float32: Float32Array, float64: Float64Array, int8: Int8Array, int16: Int16Array, int32: Int32Array,
  int64: BigInt64Array, uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, bool: Uint8Array,
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

function packNDArray(a: NDArray): Buffer {
  const code = SPEC.ndarray.dtypes.indexOf(a.dtype);
  const header = Buffer.alloc(2 + 4 * a.shape.length);
  header.writeUInt8(code, 0);
  header.writeUInt8(a.shape.length, 1);
  a.shape.forEach((d, i) => header.writeUInt32LE(d, 2 + 4 * i));
  return Buffer.concat([header, Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength)]);
}

function unpackNDArray(buf: Uint8Array): NDArray {
  if (buf.length < 2) throw new Error("ndarray ext shorter than its header");
  const dtype = SPEC.ndarray.dtypes[buf[0]];
  if (!dtype) throw new Error(`unknown ndarray dtype code ${buf[0]}`);
  const ndim = buf[1];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const off = 2 + 4 * ndim;
  if (buf.length < off) throw new Error("ndarray ext shorter than its shape");
  const shape = Array.from({ length: ndim }, (_, i) => view.getUint32(2 + 4 * i, true));
  const Ctor = ARRAY_TYPES[dtype];
  const n = shape.reduce((a, b) => a * b, 1);
  if (buf.length - off !== n * Ctor.BYTES_PER_ELEMENT)
    throw new Error(`ndarray payload of ${buf.length - off} bytes does not match shape [${shape}] ${dtype}`);
  const start = buf.byteOffset + off;
  // A typed array view needs an aligned offset; copy the (rare) unaligned payloads.
  const data =
    start % Ctor.BYTES_PER_ELEMENT === 0
      ? new Ctor(buf.buffer as ArrayBuffer, start, n)
      : new Ctor(new Uint8Array(buf.subarray(off)).buffer as ArrayBuffer, 0, n); // a copy (Buffer.slice would be a view)
  return new NDArray(dtype, shape, data);
}

addExtension({ Class: NDArray, type: SPEC.ndarray.ext_type, pack: packNDArray, unpack: unpackNDArray });

// int64AsType "auto": 64-bit ints within ±2^53 decode as numbers (documented; missing from the .d.ts).
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true, int64AsType: "auto" as "number" });

export const pack = (value: unknown): Buffer => packr.pack(value);
export const unpack = (frame: Uint8Array): any => packr.unpack(frame);

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
