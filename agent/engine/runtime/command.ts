// Helper binaries are run through shared/command.ts (managers run openssl too); re-exported
// here so the engine's modules keep one import path.
export { CommandError, runCommand, type CommandResult } from "../../../shared/command.js";
