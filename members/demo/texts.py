"""Community copy for the demo, in English and Chinese. `{course}` is replaced by a course title in the author's
language; a member writes in their preferred language."""
from __future__ import annotations

POSTS_EN: tuple[tuple[str, str], ...] = (
    ("Finished {course} - my notes", ("Just finished **{course}**. Three things I will actually use:\n\n"
     "1. Start from the question, not the tool\n2. Write down assumptions first\n3. Share drafts early\n\n"
     "Happy to share my worksheet if anyone wants it.")),
    ("Study buddy for {course}?", ("I'm starting *{course}* this week and would love someone to keep me honest. "
     "Two lessons a week, check-in here every Sunday?")),
    ("Stuck on lesson 3 of {course}", ("The exercise in lesson 3 of **{course}** doesn't click for me. "
     "How did you approach it? Any hints without spoiling the answer?")),
    ("What should I take after {course}?", ("Loved **{course}**. What did you take next? Looking for something a bit "
     "more advanced.")),
    ("Weekly check-in", ("This week I did two lessons of *{course}* and one practice project. "
     "Next week: finish the module and write a short summary. What are you working on?")),
    ("Applied {course} at work today", ("Used an idea from **{course}** in a meeting today and my manager noticed. "
     "Small win, but it felt great.")),
    ("Resource list for {course}", ("Collected some extra reading that pairs well with *{course}*:\n\n"
     "- the instructor's recommended book\n- a good podcast episode\n- two blog posts\n\nAdd yours below!")),
    ("Is {course} worth it for beginners?", ("Thinking about buying **{course}**. I'm fairly new to the topic - "
     "is it too much at the start?")),
)

POSTS_ZH: tuple[tuple[str, str], ...] = (
    ("学完《{course}》的笔记", ("刚刚学完 **《{course}》**，最有用的三点：\n\n1. 先想清楚问题，再选工具\n"
     "2. 先写下假设\n3. 尽早分享草稿\n\n需要练习表的同学可以留言。")),
    ("找《{course}》的学习搭子", "这周开始学 *《{course}》*，想找个人互相监督。每周两节课，周日在这里打卡？"),
    ("《{course}》第三课卡住了", "《{course}》第三课的练习我一直没想明白，大家是怎么做的？求提示，不要直接给答案～"),
    ("学完《{course}》之后学什么？", "非常喜欢 **《{course}》**，大家接下来学了哪门课？想找稍微进阶一点的。"),
    ("本周学习打卡", "这周学了两节 *《{course}》*，做了一个小练习。下周目标：学完这一章并写一篇总结。你们呢？"),
    ("今天在工作中用上了《{course}》", "今天开会时用了 **《{course}》** 里的方法，领导还夸了一句，小小的成就感！"),
    ("《{course}》配套资料整理", ("整理了一些和 *《{course}》* 搭配的资料：\n\n- 老师推荐的书\n- 一期不错的播客\n"
     "- 两篇博客文章\n\n欢迎在评论区补充！")),
    ("零基础适合学《{course}》吗？", "在考虑买 **《{course}》**，我基础比较弱，一开始会不会太难？"),
)

COMMENTS_EN: tuple[str, ...] = (
    "Thanks for sharing, this is really helpful!",
    "Same here - lesson 3 took me two tries.",
    "I'm in! Let's check in every Sunday.",
    "Try re-watching the second half of the video, the example makes it clearer.",
    "Great summary. Saving this.",
    "I took the advanced one next and it was a good step up.",
    "Congrats, that's a real win!",
    "Could you share the worksheet? Would love to compare.",
    "It's fine for beginners if you do the exercises.",
    "Adding a book I liked: short and practical.",
)

COMMENTS_ZH: tuple[str, ...] = (
    "感谢分享，很有帮助！",
    "我也是，第三课做了两遍才懂。",
    "算我一个！每周日打卡。",
    "可以再看一遍视频后半段，那个例子讲得更清楚。",
    "总结得很好，收藏了。",
    "我后来学了进阶课，难度衔接得不错。",
    "恭喜，真不错！",
    "能分享一下练习表吗？想对照一下。",
    "零基础也可以，认真做练习就行。",
    "补充一本我喜欢的书，短小实用。",
)

WELCOME_POST = (
    "Welcome to the Learning Club community! 欢迎来到学习社区！",
    "Introduce yourself below: what are you learning this month?\n\n在下面介绍一下自己吧：这个月你在学什么？",
)

# Review copy by rating band (1-2, 3, 4-5).
REVIEWS_EN: dict[str, tuple[str, ...]] = {
    "low": ("Too basic for me and the exercises felt rushed.", "Audio quality was poor in several lessons.",
            "Not what the description promised."),
    "mid": ("Solid content, but a few lessons drag.", "Good overview; I wanted more real examples.",
            "Useful, though the pace is uneven."),
    "high": ("Clear, practical and well paced. I used it at work the next day.",
             "The exercises are the best part. Highly recommended.", "Exactly the right depth. Great instructor!",
             "Finished it in two weeks and already signed up for the next one."),
}
REVIEWS_ZH: dict[str, tuple[str, ...]] = {
    "low": ("内容太基础了，练习也比较仓促。", "好几节课的音质不太好。", "和课程介绍不太一样。"),
    "mid": ("内容扎实，但有几节课偏拖沓。", "概览不错，希望多一些真实案例。", "有用，但节奏不太均匀。"),
    "high": ("清晰、实用、节奏好，第二天就用在工作里了。", "练习设计得最好，强烈推荐！", "深度刚刚好，老师讲得很棒！",
             "两周学完，已经报了下一门课。"),
}
