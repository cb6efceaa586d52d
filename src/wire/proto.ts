/**
 * The generated protobuf code, loaded with Long support switched off so that int64 fields
 * decode as plain numbers (versions and times stay far below 2^53).
 */
import './long-off.js';
export { picket as pb } from '../gen/proto.js';
