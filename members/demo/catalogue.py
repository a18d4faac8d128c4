"""The demo catalogue: hand-written courses (English and Chinese), tiers with benefits, coupons and save offers.

Plain data, no database access: the generator turns these into rows. Prices are in CNY.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class CourseSpec:
    topic: str
    title: str
    title_zh: str
    level: str
    price: int
    instructor: str
    tags: tuple[str, ...]
    lessons: int


@dataclass(frozen=True)
class TierSpec:
    slug: str
    name: str
    description: str
    monthly_price: Decimal
    yearly_price: Decimal
    trial_days: int
    order: int
    # (kind, value or None)
    benefits: tuple[tuple[str, Decimal | None], ...]


TOPICS: dict[str, tuple[str, str]] = {
    "data": ("Data & analytics", "数据分析"),
    "product": ("Product management", "产品管理"),
    "design": ("Design", "设计"),
    "writing": ("Writing & content", "写作与内容"),
    "finance": ("Personal finance", "个人理财"),
    "language": ("Languages", "语言学习"),
    "career": ("Career growth", "职业发展"),
    "ai": ("AI in practice", "人工智能实战"),
}

_C = CourseSpec
COURSES: tuple[CourseSpec, ...] = (
    # data
    _C("data", "SQL for Analysts", "给分析师的 SQL 课", "beginner", 199, "Lin Yue", ("sql", "analytics"), 8),
    _C("data", "Python Data Analysis with pandas", "用 pandas 做 Python 数据分析", "intermediate", 299, "Zhou Ming", ("python", "pandas"), 10),
    _C("data", "Dashboards that Get Read", "让人愿意看的数据看板", "beginner", 149, "Sara Holm", ("bi", "visualisation"), 6),
    _C("data", "A/B Testing in Practice", "A/B 测试实战", "advanced", 399, "Chen Rui", ("experiments", "statistics"), 8),
    _C("data", "Statistics Without Tears", "轻松学统计", "beginner", 0, "Lin Yue", ("statistics", "free"), 5),
    _C("data", "Customer Analytics and Retention", "用户分析与留存", "intermediate", 349, "Wang Jing", ("retention", "cohorts"), 9),
    # product
    _C("product", "Product Discovery Fundamentals", "产品探索基础", "beginner", 199, "Marta Ruiz", ("discovery", "interviews"), 7),
    _C("product", "Writing Great PRDs", "写好产品需求文档", "beginner", 129, "Li Hao", ("prd", "documentation"), 5),
    _C("product", "Growth Loops and Metrics", "增长飞轮与指标体系", "intermediate", 329, "Wang Jing", ("growth", "metrics"), 8),
    _C("product", "Pricing and Packaging", "定价与套餐设计", "advanced", 429, "Tom Becker", ("pricing", "monetisation"), 6),
    _C("product", "Roadmaps Stakeholders Trust", "让人信任的产品路线图", "intermediate", 249, "Marta Ruiz", ("roadmap", "strategy"), 6),
    _C("product", "From Idea to MVP in Four Weeks", "四周从想法到 MVP", "beginner", 229, "Li Hao", ("mvp", "startups"), 8),
    # design
    _C("design", "UI Design Basics", "界面设计入门", "beginner", 179, "Xu Lan", ("ui", "figma"), 8),
    _C("design", "Design Systems at Scale", "规模化设计系统", "advanced", 399, "Nina Park", ("design-systems", "components"), 9),
    _C("design", "UX Research Toolkit", "用户体验研究工具箱", "intermediate", 269, "Xu Lan", ("research", "usability"), 7),
    _C("design", "Typography for Screens", "屏幕字体排版", "beginner", 119, "Nina Park", ("typography",), 5),
    _C("design", "Motion and Micro-interactions", "动效与微交互", "intermediate", 239, "Guo Fei", ("motion", "prototyping"), 6),
    # writing
    _C("writing", "Clear Business Writing", "清晰的商务写作", "beginner", 149, "Emma Stone", ("business", "email"), 6),
    _C("writing", "Newsletter from Zero", "从零做一份周报通讯", "beginner", 199, "He Qing", ("newsletter", "audience"), 7),
    _C("writing", "Storytelling for Non-fiction", "非虚构写作的讲故事技巧", "intermediate", 259, "Emma Stone", ("storytelling",), 8),
    _C("writing", "Copywriting that Converts", "高转化文案", "intermediate", 289, "He Qing", ("copywriting", "marketing"), 6),
    _C("writing", "Writing a Book in a Year", "一年写完一本书", "advanced", 459, "Ye Zi", ("book", "habits"), 10),
    # finance
    _C("finance", "Budgeting that Sticks", "坚持得下去的预算法", "beginner", 99, "Zhao Lei", ("budget", "habits"), 5),
    _C("finance", "Index Investing Explained", "指数基金投资讲透", "beginner", 199, "Anna Weiss", ("investing", "funds"), 7),
    _C("finance", "Reading Financial Statements", "读懂财务报表", "intermediate", 299, "Zhao Lei", ("accounting", "analysis"), 8),
    _C("finance", "Tax Basics for Freelancers", "自由职业者的税务基础", "beginner", 149, "Anna Weiss", ("tax", "freelance"), 5),
    _C("finance", "Retirement Planning in Your 30s", "三十岁开始规划养老", "intermediate", 249, "Sun Mei", ("retirement", "planning"), 6),
    # language
    _C("language", "Business English Meetings", "商务英语会议表达", "intermediate", 219, "James Hill", ("english", "speaking"), 8),
    _C("language", "Mandarin for Beginners", "零基础学普通话", "beginner", 199, "Wu Ting", ("mandarin", "chinese"), 10),
    _C("language", "English Pronunciation Clinic", "英语发音诊所", "beginner", 159, "James Hill", ("english", "pronunciation"), 6),
    _C("language", "Japanese in 30 Days", "三十天日语入门", "beginner", 189, "Mori Aki", ("japanese",), 8),
    _C("language", "Academic Writing in English", "英文学术写作", "advanced", 329, "Wu Ting", ("english", "academic"), 7),
    # career
    _C("career", "Interview Like a Pro", "像高手一样面试", "beginner", 149, "Kate Moss", ("interviews", "jobs"), 6),
    _C("career", "Negotiating Your Salary", "薪资谈判", "intermediate", 199, "Liu Yang", ("negotiation",), 5),
    _C("career", "First-time Manager", "新手管理者", "intermediate", 299, "Kate Moss", ("management", "leadership"), 9),
    _C("career", "Personal Brand on LinkedIn", "在领英打造个人品牌", "beginner", 129, "Liu Yang", ("branding", "linkedin"), 5),
    _C("career", "Time Management for Deep Work", "深度工作的时间管理", "beginner", 0, "Tian Xi", ("productivity", "free"), 4),
    _C("career", "Public Speaking with Confidence", "自信地公开演讲", "intermediate", 229, "Tian Xi", ("speaking",), 7),
    # ai
    _C("ai", "Prompt Engineering Essentials", "提示词工程要点", "beginner", 199, "Alex Chen", ("llm", "prompts"), 6),
    _C("ai", "Machine Learning for Product People", "给产品人的机器学习", "intermediate", 349, "Qian Yu", ("ml", "product"), 8),
    _C("ai", "Building Apps with LLM APIs", "用大模型 API 构建应用", "advanced", 499, "Alex Chen", ("llm", "python"), 10),
    _C("ai", "AI for Everyday Productivity", "用 AI 提升日常效率", "beginner", 129, "Qian Yu", ("productivity", "tools"), 5),
    _C("ai", "Responsible AI and Data Privacy", "负责任的 AI 与数据隐私", "intermediate", 259, "Maya Singh", ("ethics", "privacy"), 6),
    _C("ai", "Computer Vision Crash Course", "计算机视觉速成", "advanced", 459, "Maya Singh", ("vision", "deep-learning"), 9),
)

# Lesson titles per topic; a course takes the first n, so lesson 1 always introduces and the last one wraps up.
LESSON_STEMS: dict[str, tuple[str, ...]] = {
    "data": ("Why this matters", "Setting up your workspace", "Loading and cleaning data", "Asking the right question",
             "Aggregations and grouping", "Joining sources", "Charts that explain", "Common pitfalls",
             "A real case study", "Wrap-up and next steps"),
    "product": ("The problem behind the request", "Talking to users", "Framing opportunities", "Prioritising",
                "Writing it down", "Working with engineering", "Measuring outcomes", "Saying no",
                "Case study", "Wrap-up and next steps"),
    "design": ("Principles first", "Layout and grids", "Colour and contrast", "Components", "Prototyping",
               "Testing with users", "Handing off to developers", "Accessibility", "Critique session",
               "Wrap-up and next steps"),
    "writing": ("Know your reader", "One idea per piece", "Outlines that work", "First drafts fast",
                "Editing ruthlessly", "Headlines", "Voice and tone", "Feedback loops", "Publishing",
                "Wrap-up and next steps"),
    "finance": ("Where your money goes", "Goals and time horizons", "Emergency funds", "Debt first?",
                "Investing basics", "Risk and diversification", "Taxes", "Automating it", "Review your plan",
                "Wrap-up and next steps"),
    "language": ("Sounds and rhythm", "Everyday phrases", "Numbers and time", "Small talk", "Asking questions",
                 "Listening practice", "Role play", "Common mistakes", "Speaking test", "Wrap-up and next steps"),
    "career": ("Know what you want", "Your story in two minutes", "Preparing evidence", "Practice out loud",
               "Handling hard questions", "Following up", "Negotiation basics", "Building habits",
               "Case study", "Wrap-up and next steps"),
    "ai": ("What the models can and cannot do", "Setting up", "Your first prompt", "Structured outputs",
           "Evaluating results", "Working with your own data", "Costs and latency", "Safety and privacy",
           "Project walkthrough", "Wrap-up and next steps"),
}

TIERS: tuple[TierSpec, ...] = (
    TierSpec(
        "basic", "Basic", "The community, weekly study threads and 10% off every course.",
        Decimal("29.00"), Decimal("290.00"), 0, 1,
        (("community", None), ("course_discount", Decimal(10))),
    ),
    TierSpec(
        "plus", "Plus", "Every course included, the community and certificates. Try it free for 7 days.",
        Decimal("79.00"), Decimal("790.00"), 7, 2,
        (("all_courses", None), ("community", None), ("certificates", None)),
    ),
    TierSpec(
        "pro", "Pro", "Everything in Plus, monthly live Q&A with instructors, downloads and 2 coaching credits a month.",
        Decimal("149.00"), Decimal("1490.00"), 0, 3,
        (("all_courses", None), ("community", None), ("certificates", None), ("live_qa", None), ("downloads", None),
         ("monthly_credits", Decimal(2))),
    ),
)

BENEFIT_DESCRIPTIONS: dict[str, str] = {
    "all_courses": "Every course in the catalogue",
    "course_discount": "Discount on every course purchase",
    "community": "Post, comment and join study threads",
    "certificates": "A certificate for every finished course",
    "live_qa": "Monthly live Q&A with instructors",
    "downloads": "Download lessons and worksheets",
    "monthly_credits": "Coaching credits each month",
}


@dataclass(frozen=True)
class GeneralCoupon:
    code: str
    description: str
    percent_off: Decimal | None
    amount_off: Decimal | None
    applies_to: str
    # Validity as offsets in days from the start of the simulated window; None = open-ended.
    from_day: int
    until_day: int | None
    max_redemptions: int | None


GENERAL_COUPONS: tuple[GeneralCoupon, ...] = (
    GeneralCoupon("WELCOME10", "10% off your first course", Decimal(10), None, "courses", 0, None, None),
    GeneralCoupon("MEMBER15", "15% off a membership", Decimal(15), None, "tiers", 0, None, None),
    GeneralCoupon("SAVE50", "50 CNY off any course over the summer", None, Decimal(50), "courses", 150, 240, 400),
    GeneralCoupon("DOUBLE11", "Singles' Day: 25% off everything", Decimal(25), None, "all", 300, 312, 300),
)

# The save offer the cancellation flow shows (issue 5 reads it); pause offer for members who are only busy.
RETENTION_OFFERS = (
    {"name": "30% off your next period", "kind": "discount", "percent_off": Decimal(30), "pause_days": None,
     "headline": "Stay with us: your next period is 30% off.", "reasons": ["too_expensive", "content", "other"]},
    {"name": "Pause for a month", "kind": "pause", "percent_off": None, "pause_days": 30,
     "headline": "Busy right now? Pause your membership for 30 days instead.", "reasons": ["not_using", "finished"]},
)

REMINDER_DAYS = (14, 7, 1)

FIRST_NAMES_EN = ("Alice", "Ben", "Chloe", "David", "Ella", "Finn", "Grace", "Henry", "Isla", "Jack", "Kara",
                  "Leo", "Mia", "Noah", "Olivia", "Paul", "Quinn", "Ruby", "Sam", "Tara", "Uma", "Victor", "Wendy",
                  "Xavier", "Yara", "Zoe")
LAST_NAMES_EN = ("Smith", "Brown", "Lee", "Garcia", "Miller", "Davis", "Wilson", "Moore", "Taylor", "Clark",
                 "Lewis", "Walker", "Young", "King", "Wright", "Hill")
SURNAMES_ZH = ("王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭")
GIVEN_NAMES_ZH = ("伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "杰", "涛", "明", "超", "秀英", "晓", "婷",
                  "宇", "欣", "浩", "佳", "琳")
COUNTRIES_ZH = ("CN", "CN", "CN", "CN", "SG", "TW", "HK", "MY")
COUNTRIES_EN = ("US", "GB", "DE", "SG", "AU", "CA", "NL", "IE")
TIME_ZONES = {"CN": "Asia/Shanghai", "SG": "Asia/Singapore", "TW": "Asia/Taipei", "HK": "Asia/Hong_Kong",
              "MY": "Asia/Kuala_Lumpur", "US": "America/New_York", "GB": "Europe/London", "DE": "Europe/Berlin",
              "AU": "Australia/Sydney", "CA": "America/Toronto", "NL": "Europe/Amsterdam", "IE": "Europe/Dublin"}


def course_summary(spec: CourseSpec) -> str:
    topic_en = TOPICS[spec.topic][0].lower()
    article = "An" if spec.level[0] in "aeiou" else "A"
    return (f"{article} {spec.level} course in {topic_en}: {spec.lessons} short lessons with exercises you can use "
            f"at work.")


def course_summary_zh(spec: CourseSpec) -> str:
    return f"一门{LEVELS_ZH[spec.level]}的{TOPICS[spec.topic][1]}课程：{spec.lessons} 节短课，每节都有能直接用在工作中的练习。"


def course_description(spec: CourseSpec) -> str:
    topic_en = TOPICS[spec.topic][0]
    return (
        f"{spec.title} is taught by {spec.instructor}. Over {spec.lessons} lessons you practise the core ideas of "
        f"{topic_en.lower()} on realistic examples, with a worksheet after each lesson and a small project at the "
        f"end."
    )


def course_description_zh(spec: CourseSpec) -> str:
    return (f"《{spec.title_zh}》由 {spec.instructor} 主讲，共 {spec.lessons} 节课，围绕{TOPICS[spec.topic][1]}的核心方法，"
            f"用真实案例练习，每节课配有练习，最后完成一个小项目。")


def course_audience(spec: CourseSpec) -> str:
    return {
        "beginner": "Newcomers who want a practical start.",
        "intermediate": "People who know the basics and want to go further.",
        "advanced": "Practitioners who want depth and edge cases.",
    }[spec.level]


def course_audience_zh(spec: CourseSpec) -> str:
    return {
        "beginner": "适合零基础、想快速上手的学员。",
        "intermediate": "适合有一定基础、想进阶的学员。",
        "advanced": "适合希望深入钻研的从业者。",
    }[spec.level]


def lesson_body(spec: CourseSpec, position: int, title: str) -> str:
    return (
        f"## {title}\n\nIn this lesson of *{spec.title}* we work through {title.lower()} step by step.\n\n"
        f"- Watch the {8 + position % 7}-minute video\n- Try the exercise\n- Share your answer in the community"
    )


# ---- Chinese content (issue 18): every course, lesson, topic, tier and benefit text ships in both languages ----

LEVELS_ZH = {"beginner": "入门", "intermediate": "进阶", "advanced": "高阶"}

LESSON_TITLES_ZH: dict[str, str] = {
    "Why this matters": "为什么这很重要", "Setting up your workspace": "准备你的工作环境",
    "Loading and cleaning data": "加载与清洗数据", "Asking the right question": "提出正确的问题",
    "Aggregations and grouping": "聚合与分组", "Joining sources": "关联多个数据源", "Charts that explain": "会说话的图表",
    "Common pitfalls": "常见陷阱", "A real case study": "真实案例", "Wrap-up and next steps": "总结与下一步",
    "The problem behind the request": "需求背后的问题", "Talking to users": "和用户交谈", "Framing opportunities": "定义机会",
    "Prioritising": "确定优先级", "Writing it down": "把它写下来", "Working with engineering": "与工程师协作",
    "Measuring outcomes": "衡量结果", "Saying no": "学会说不", "Case study": "案例分析",
    "Principles first": "先讲原则", "Layout and grids": "布局与栅格", "Colour and contrast": "色彩与对比",
    "Components": "组件", "Prototyping": "原型", "Testing with users": "用户测试", "Handing off to developers": "交付给开发",
    "Accessibility": "无障碍设计", "Critique session": "设计评审",
    "Know your reader": "了解你的读者", "One idea per piece": "一篇只讲一个观点", "Outlines that work": "好用的提纲",
    "First drafts fast": "快速写出初稿", "Editing ruthlessly": "大刀阔斧地修改", "Headlines": "标题",
    "Voice and tone": "语气与风格", "Feedback loops": "反馈循环", "Publishing": "发布",
    "Where your money goes": "钱都花到哪里了", "Goals and time horizons": "目标与期限", "Emergency funds": "应急资金",
    "Debt first?": "先还债吗？", "Investing basics": "投资基础", "Risk and diversification": "风险与分散",
    "Taxes": "税务", "Automating it": "让它自动运行", "Review your plan": "复盘你的计划",
    "Sounds and rhythm": "发音与节奏", "Everyday phrases": "日常用语", "Numbers and time": "数字与时间",
    "Small talk": "闲聊", "Asking questions": "提问", "Listening practice": "听力练习", "Role play": "角色扮演",
    "Common mistakes": "常见错误", "Speaking test": "口语测试",
    "Know what you want": "想清楚你要什么", "Your story in two minutes": "两分钟讲好你的故事",
    "Preparing evidence": "准备证据", "Practice out loud": "大声练习", "Handling hard questions": "应对难题",
    "Following up": "跟进", "Negotiation basics": "谈判基础", "Building habits": "养成习惯",
    "What the models can and cannot do": "模型能做什么、不能做什么", "Setting up": "准备环境",
    "Your first prompt": "你的第一个提示词", "Structured outputs": "结构化输出", "Evaluating results": "评估结果",
    "Working with your own data": "使用你自己的数据", "Costs and latency": "成本与延迟",
    "Safety and privacy": "安全与隐私", "Project walkthrough": "项目演练",
}


def lesson_body_zh(spec: CourseSpec, position: int, title: str) -> str:
    title_zh = LESSON_TITLES_ZH[title]
    return (
        f"## {title_zh}\n\n在《{spec.title_zh}》的这一节里，我们一步一步地学习“{title_zh}”。\n\n"
        f"- 观看 {8 + position % 7} 分钟的视频\n- 完成练习\n- 在社区分享你的答案"
    )


TIERS_ZH: dict[str, tuple[str, str]] = {
    "basic": ("基础会员", "社区、每周学习讨论帖，以及所有课程九折。"),
    "plus": ("进阶会员", "包含全部课程、社区和结业证书。可免费试用 7 天。"),
    "pro": ("专业会员", "包含进阶会员的全部权益，另有每月讲师直播答疑、资料下载和每月 2 次辅导。"),
}

BENEFIT_DESCRIPTIONS_ZH: dict[str, str] = {
    "all_courses": "课程库中的全部课程",
    "course_discount": "购买任何课程都享折扣",
    "community": "发帖、评论并参加学习讨论",
    "certificates": "每门学完的课程都有证书",
    "live_qa": "每月一次讲师直播答疑",
    "downloads": "下载课程和练习资料",
    "monthly_credits": "每月的辅导次数",
}
