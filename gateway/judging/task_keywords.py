"""The words that name a task, per label, for :class:`gateway.judging.task.KeywordClassifier`.

Data only: labels are those of :data:`gateway.judging.task.TASKS`; the classifier
builds its lookup tables from these once, when it is constructed.
"""

from __future__ import annotations

# Keywords as (label, weight, words), matched as whole lower-cased words.
# ``translat{e|ed|ion}`` expands to translate, translated, translation; a
# ``_`` joins the words of a phrase (``key_points``). Weight 3: the word names
# the task; 2: strong evidence; 1: a hint.
KEYWORDS: tuple[tuple[str, float, str], ...] = (
    ("translation", 3, "translat{e|es|ed|ing|ion|ions|or} traduc{e|ir|e|eme|tion|ción|iendo}"),
    ("translation", 3, "tradúceme traduzca traduis traduisez traduire traduction traduza traduzir"),
    ("translation", 3, "tradução traduci tradurre traduzione übersetz{e|en|ung|t} переведи"),
    ("translation", 3, "перевести перевод localize localise how_do_you_say cómo_se_dice"),
    ("translation", 3, "comment_dit_on wie_heißt put_this_into brazilian_portuguese"),
    ("translation", 1.5, "say dice mean means meaning significa signifie romanization"),
    ("summarization", 3, "summar{y|ize|izes|ized|izing|ies|ise|ised|ising} tldr tl_dr recap"),
    ("summarization", 3, "resume resumen resumir resuma resumo résume résumer résumé synthèse"),
    ("summarization", 3, "zusammenfass{ung|en} zusammen riassum{i|ere|o} riassunto gist"),
    ("summarization", 3, "condense takeaways sum_up key_points main_points short_version"),
    ("summarization", 3, "boil_this points_principaux puntos_principales idées_principales"),
    ("summarization", 2, "shorten abstract overview highlights nutshell bullets sintetiza"),
    (
        "summarization",
        2,
        "{one|two|three|few|1|2|3|4|5}_{sentence|sentences|lines|bullets|paragraphs}",
    ),
    (
        "summarization",
        2,
        "{una|dos|tres|une|deux|trois|quelques|zwei|drei|uma|poche}_{frase|frases|phrases|lignes|sätzen|zeilen|righe|linhas}",
    ),
    ("summarization", 2, "under_{20|30|50|100|150|200}_words"),
    ("extraction", 3, "extract{|s|ed|ing|ion} extrae extraer extraiga extrais extraire"),
    ("extraction", 3, "extrahier{e|en} extraia extrair estrai estrarre sácame relève"),
    ("extraction", 3, "list_all list_every find_all find_every pull_out get_all as_json"),
    ("extraction", 3, "in_json json_with return_json identify_all tag_each key_value"),
    ("extraction", 3, "fill_this are_mentioned is_mentioned named_entities"),
    ("extraction", 2, "as_a_list as_a_table als_liste als_tabelle en_tabla forme_de_tableau"),
    ("extraction", 2, "json csv schema fields entities entity parse mentioned"),
    ("extraction", 1, "table identify ids"),
    ("creative", 3, "poem poems poetry haiku sonnet limerick lyrics slogan tagline jingle"),
    ("creative", 3, "poema poème poésie gedicht poesia werbeslogan bedtime fairy fable"),
    ("creative", 3, "story stories tale novel fiction screenplay rap verse toast joke"),
    ("creative", 3, "cuento relato histoire conte récit märchen erzählung racconto favola"),
    ("creative", 3, "história conto storia name_ideas come_up make_up opening_scene"),
    ("creative", 2, "imagine invent inventa invente erfinde dialogue song fantasy"),
    ("creative", 2, "catchy punchy witty funny rhyme rhyming character plot"),
    ("math", 3, "equation{|s} integral{|s} derivative{|s} differentiate eigenvalue{|s}"),
    ("math", 3, "theorem ecuación ecuaciones équation dérivée intégrale gleichung"),
    ("math", 3, "ableitung equação derivada equazione integrale wahrscheinlichkeit"),
    ("math", 3, "probabilité probability probabilidad probabilidade probabilità calculus"),
    ("math", 2, "solve resuelve resolver résous löse prove simplify factorize"),
    ("math", 2, "calculate calcule calcula calcular calcola berechne berechnen compute"),
    ("math", 2, "matrix fraction permutations combinations perimeter diagonals"),
    ("math", 2, "algebra geometry arithmetic irrational lim sqrt how_many prime_number"),
    ("math", 2, "how_much how_long cuánto cuántos combien wie_viele quanto"),
    ("math", 1, "mean median average percent interest area volume ways sum prime proof"),
    ("math", 0.5, "what_is what_time"),
    ("code", 3, "python javascript typescript java golang kotlin rust c++ c# php ruby"),
    ("code", 3, "sql regex bash powershell dockerfile kubernetes react node nodejs"),
    ("code", 3, "git npm pip pytest segfault refactor debug compiler stacktrace"),
    ("code", 3, "traceback typeerror valueerror keyerror nullpointerexception"),
    ("code", 3, "one_liner unit_test unit_tests node_js"),
    ("code", 2, "code código codice function función fonction funktion funzione"),
    ("code", 2, "script method class bug api endpoint async await callback regexp"),
    ("code", 2, "query consulta docker deployment yaml html css postgresql postgres"),
    ("code", 2, "mysql database compile exception array loop recursion"),
    ("code", 2, "implement implementa algorithm lru variable programming interface"),
    ("code", 1, "error errors fails crash linux terminal command repo commit"),
)

# A target language makes a translation: "in French", "auf Deutsch", "al inglés".
LANGUAGES = (
    "english spanish french german italian portuguese dutch japanese chinese korean russian "
    "arabic hindi polish turkish swedish greek hebrew mandarin cantonese inglés ingles español "
    "castellano francés alemán italiano portugués japonés chino coreano anglais espagnol "
    "allemand italien portugais japonais chinois coréen français englisch englische deutsch "
    "deutsche französisch spanisch italienisch japanisch chinesisch inglês espanhol francês "
    "alemão japonês inglese spagnolo francese tedesco giapponese cinese"
)
#: words that, just before a language's name, ask for text in that language
TO_WORDS = "in into to en al a au auf ins em para nach del from"
#: a natural language after one of :data:`TO_WORDS`: the text asks for a translation
LANGUAGE_WEIGHT = 3.0

# Japanese, Chinese and Korean have no spaces between words: substring tests.
CJK: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("translation", 3, ("翻译", "翻譯", "翻訳", "번역", "英語に", "英文", "英语", "영어로")),
    ("summarization", 3, ("要約", "总结", "總結", "摘要", "概括", "まとめ", "요약")),
    ("extraction", 3, ("抽出", "抜き出", "提取", "抽取", "추출")),
    ("creative", 3, ("俳句", "詩", "诗", "物語", "故事", "小説", "小说", "歌词", "口号")),
    ("math", 3, ("方程", "積分", "微分", "求和", "数列", "等差", "等比", "概率", "確率", "计算")),
    ("code", 3, ("コード", "代码", "代碼", "関数", "函数", "函數", "코드", "python", "javascript")),
)
