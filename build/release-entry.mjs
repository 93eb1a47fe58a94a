// The release executable's entry: first check that the ZeroMQ addon is beside the executable (zeromq is
// loaded only when the first kernel starts, and a broken archive should say so at once), then the
// command itself. Imports run in this order.
import './zeromq-addon-check.cjs';
import '../src/cli.ts';
