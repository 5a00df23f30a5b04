// The attack registry: every attack by name, with its norm, a one-line description, the defaults it
// resolves and its factory. make_attack, attack_names() and the command line's help texts read it.
// Adding an attack is its file (a class derived from Attack, resolving its defaults in its constructor)
// plus one line in the table in attacks/registry.cpp.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "advgrad/attacks/attack.h"

namespace advgrad {

struct AttackEntry {
  std::string name;         // as on the command line: "pgd"
  Norm norm;                // the threat model the name stands for; make_attack sets options.norm to it
  std::string description;  // one line: what it is, after whom
  std::string defaults;     // what it fills in when the options leave it open, in words
  std::function<std::unique_ptr<Attack>(const AttackOptions&)> make;  // options.norm already set
};

// Every attack, in the order help texts list them.
const std::vector<AttackEntry>& attack_registry();
// The entry of `name`; ValueError "unknown attack 'NAME' (known: ...)" listing every name.
const AttackEntry& attack_entry(const std::string& name);

}  // namespace advgrad
