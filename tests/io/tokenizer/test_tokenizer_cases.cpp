// Hand-written hard cases for the tokenizer oracle test (byte strings; the invalid UTF-8 ones
// are compared against the oracle on their U+FFFD repair).
#include <string>
#include <vector>

namespace sq::test {

std::vector<std::string> hard_tokenizer_cases() {
  using namespace std::string_literals;
  std::vector<std::string> v = {
      "",
      " ",
      "  ",
      "     ",
      "\t",
      "\t\tx\t",
      "\n",
      "\n\n\n",
      "\r\n",
      "a\r\nb\r\n\r\nc",
      "line1\rline2",
      " leading",
      "trailing ",
      "  two  spaces  inside  ",
      " \n \n ",
      "x \t\n y",
      "0",
      "12",
      "123",
      "1234567",
      "12345678901234567890",
      "3.14159 and 2,000,000.00",
      "v1.2.3-rc4",
      "٣٤٥ ١٢ ۱۲۳",
      "①②③ ½ ²³",
      "Hello, world!",
      "HELLO WORLD",
      "I'm you're "
      "they'LL WE'VE it'S he'd",
      "don\u2019t",
      "Ünïcödé façade naïve résumé",
      "e\u0301 a\u0308\u0301 o\u0323\u0302",
      "\u0301starts with a mark",
      "Å vs \u212B (angstrom)",
      "ﬁ ligature ﬀ",
      "한국어 텍스트입니다",
      "\u1100\u1161\u11A8 jamo",
      "日本語のテキスト、カタカナ。",
      "中文测试，标点符号！",
      "混合mixed文本text123",
      "Привет, мир!",
      "Ελληνικά κείμενα",
      "مرحبا بالعالم",
      "שלום עולם",
      "नमस्ते दुनिया",
      "สวัสดีชาวโลก",
      "𝐀𝐁𝐂 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
      "emoji 👍 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷",
      "❤️❤\uFE0F",
      "\u00a0nbsp\u2003emsp\u3000ideo",
      "zero\u200bwidth\u200djoiner\u2060",
      "\u0085nel\u2028ls\u2029ps",
      "\uFEFFbom",
      "ſ long s 'ſ 'S",
      "ǅ Ǆ ǆ titlecase",
      "İstanbul ı",
      "straße STRASSE",
      "ctrl\x01\x02\x7f\x1b[0m",
      "a\0b"s,
      "\xEF\xBF\xBD replacement char",
      "<|begin_of_text|>hi<|end_of_text|>",
      "text <|begin_of_text|> text",
      "<s>hi</s>",
      "<s> spaced </s>",
      "<<s>>",
      "<|begin_of_text",
      "<bos>x<eos><pad>",
      "<unk>",
      "<mask> [multimodal]",
      "<|im_start|>user\nhi<|im_end|>\n",
      "<think>\nreason\n</think>",
      "<|endoftext|><|endoftext|>",
      "<｜begin▁of▁sentence｜>x<｜end▁of▁sentence｜>",
      "<｜▁pad▁｜>",
      "▁▁ metaspace ▁ chars",
      "<0x41> looks like byte",
      "def f(x):\n    return x ** 2\n",
      "    indented\n\tand tabbed",
      "x = {'a': [1, 2]}  # comment",
      "if a!=b and c<=d: print(f\"{a!r}\")",
      "http://example.com/a?b=c&d=e",
      "user@example.com",
      "$100 €200 ¥300 £4",
      "....!!!???"
      "---___===",
      "((()))[[[]]]{{{}}}",
      "\"quoted\" 'single' `back`",
      "Mr. O'Neil's dog's bone",
      "ALLCAPS's",
      "...'s",
      // invalid UTF-8
      "\xff",
      "abc\xc3",
      "\xe2\x82 truncated",
      "\xed\xa0\x80 surrogate",
      "\xf4\x90\x80\x80 too big",
      "\xc0\xaf overlong",
      "mixed \xf0\x9f\x98 emoji \xf0\x9f\x98\x80 ok \x80\x80",
  };
  v.push_back(std::string(3000, 'a'));
  std::string w;
  for (int i = 0; i < 60; ++i) w += "supercalifragilistic";
  v.push_back(w);
  v.push_back(w + " " + w);
  v.push_back(std::string(500, ' ') + "x" + std::string(300, '\n'));
  v.push_back(std::string(1000, '9'));
  std::string cjk;
  for (int i = 0; i < 400; ++i) cjk += "漢字";
  v.push_back(cjk);
  std::string em;
  for (int i = 0; i < 200; ++i) em += "👩🏽‍💻";
  v.push_back(em);
  return v;
}

}  // namespace sq::test
