// Docker multiplexes stdout and stderr of a non-TTY container on one stream with an 8-byte
// header per frame; the framing itself lives in shared/stdcopy.ts.
export { STDOUT, STDERR, SYSTEMERR, stdcopyFrame, encodeFrame } from "../../shared/stdcopy.js";
