// Connects the spec parser to the method and task registries: known names, run-id labels of method entries
// (Method::label), and strict validation of every method and task entry. `peftlab` calls it at start-up; tests
// that check what `peftlab validate` checks call it too.
#pragma once

namespace peftlab {

void connect_spec_to_registries();

}  // namespace peftlab
