(function(w,d){var s=d.currentScript,u=(s&&s.src||"/_tailor/t.js").replace(/t\.js(\?.*)?$/,"")+"v1/track";
function id(){try{return crypto.randomUUID()}catch(e){return Date.now().toString(36)+Math.random().toString(36).slice(2)}}
function track(n,p){if(!n)return!1;var b=JSON.stringify({type:"track",event:String(n),properties:p||{},messageId:id(),timestamp:(new Date).toISOString(),
context:{page:{path:location.pathname,url:location.href,referrer:d.referrer,title:d.title}}});
try{if(navigator.sendBeacon&&navigator.sendBeacon(u,b))return!0}catch(e){}
try{fetch(u,{method:"POST",body:b,keepalive:!0,credentials:"same-origin"});return!0}catch(e){return!1}}
d.addEventListener("click",function(e){var t=e.target,a,p={},i,k;t=t&&t.closest&&t.closest("[data-track]");if(!t)return;a=t.attributes;
for(i=0;i<a.length;i++){k=a[i].name;if(k.indexOf("data-track-")==0)p[k.slice(11).replace(/-/g,"_")]=a[i].value}
track(t.getAttribute("data-track"),p)},!0);
var q=w.tailor;w.tailor={track:track};if(q&&q.length)for(var i=0;i<q.length;i++)track.apply(null,q[i])})(window,document);
