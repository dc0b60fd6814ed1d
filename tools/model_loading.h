// Model options shared by the verbs that load a model (generate, eval, ...).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "core/model_io.h"

namespace peftlab::cli {

struct ModelArgs {
  std::string model;
  std::string tokenizer;
};

inline void add_model_options(CLI::App& cmd, ModelArgs& args) {
  cmd.add_option("--model,-m", args.model, "llama2.c checkpoint file or Hugging Face layout folder")->required();
  cmd.add_option("--tokenizer,-t", args.tokenizer, "SentencePiece .model (default: beside the model)");
}

inline LoadedModel load_model_for_cli(const ModelArgs& args) { return load_model_and_tokenizer(args.model, args.tokenizer); }

}  // namespace peftlab::cli
