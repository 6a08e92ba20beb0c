// Registers gw.shared.* and gw.ratelimit.take on a Vm.
#pragma once

namespace lg::lua {
class Vm;
void register_shared_bindings(Vm& vm);
}  // namespace lg::lua
