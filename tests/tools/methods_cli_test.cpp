// `peftlab methods`: the registry as the command line prints it, in display order, with every method's options.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "methods/registry.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

TEST(MethodsCli, JsonListsTheRegistryInOrderWithOptionsAndDefaults) {
  auto result = testing::run_cli({"methods", "--json"});
  ASSERT_EQ(result.status, 0) << result.output;
  auto list = nlohmann::json::parse(result.output);
  ASSERT_EQ(list.size(), method_names().size());
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& m = list[i];
    EXPECT_EQ(m["name"], method_names()[i]);
    EXPECT_FALSE(m["summary"].get<std::string>().empty());
    auto method = make_method_from_yaml("{name: " + method_names()[i] + "}");
    EXPECT_EQ(m["default_label"], method->label());
    // The listed options are the method's own: a mapping of all of them builds the method with its defaults.
    auto mapping = m["options"];
    mapping.erase("targets");  // listed as the family's default, which is no value to give
    mapping["name"] = m["name"];
    EXPECT_EQ(make_method_from_yaml(mapping.dump())->to_json(), method->to_json()) << m["name"];
  }
  auto text = testing::run_cli({"methods"});
  ASSERT_EQ(text.status, 0);
  for (const auto& name : method_names()) EXPECT_NE(text.output.find(name + " "), std::string::npos) << name;
}

}  // namespace
}  // namespace peftlab
