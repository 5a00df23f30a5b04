// Text from files made safe for an HTML page (text content and quoted attribute values alike, and SVG
// inside HTML): what the run report does with every string it takes from a run directory.
#pragma once
#include <string>

namespace advgrad {

// & < > " ' become entities; bytes that are not well-formed UTF-8 (stray continuation bytes, overlong
// forms, surrogates, truncated sequences) and control characters other than tab, newline and carriage
// return become U+FFFD, so no input can end an element, an attribute or the document's encoding.
std::string html_escape(const std::string& text);

}  // namespace advgrad
