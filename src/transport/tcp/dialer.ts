/** Plain TCP dialer (`tcp`), the default transport of a chain node. */
import { dialTCP } from "../../chain/direct.ts";
import { registerDialer } from "../../registry.ts";

registerDialer("tcp", () => ({ dial: (addr, o) => dialTCP(addr, o.timeout) }));
