// Must be evaluated before src/gen/proto.js: generated prototypes read util.Long at load time.
import protobuf from 'protobufjs/minimal.js';

protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();
